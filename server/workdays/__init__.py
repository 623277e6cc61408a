"""Working days and public holidays (the notice rule of QĐ 45/2018/QĐ-TTg)."""
