"""Sources of evidence, kept apart from checks: a check asks, a source answers."""
