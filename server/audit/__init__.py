"""The audit log: logins, failed logins and every administrative change."""
