"""The one error type of a bad config."""


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the key."""
