"""The one error type of a bad config (defined at the package's bottom, `resnet_repro.errors`,
so that the net families below the config raise it too)."""

from ..errors import ConfigError

__all__ = ["ConfigError"]
