pytest_plugins = [
    "tests.support.postgres", "tests.support.web", "tests.support.icaljs", "tests.support.dovecot",
    "tests.support.media_clips", "tests.support.live", "tests.support.browser",
]
