"""Fixtures the funnel's criteria use. Each area keeps its fixtures in its own module."""

pytest_plugins = [
    "fixtures.model",
    "fixtures.serving",
    "fixtures.data",
    "fixtures.stats",
]
