"""People and endpoint accounts, login, API tokens and the permission rules."""
