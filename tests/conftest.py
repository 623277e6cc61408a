pytest_plugins = ["tests.support.postgres", "tests.support.web", "tests.support.icaljs", "tests.support.dovecot"]
