"""Administrative units: a tree of data (city, districts, wards, departments, …)."""
