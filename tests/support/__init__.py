"""Test helpers that are not tests: plugins and fixtures shared by the suite."""
