"""WedSync reference API, built on wedsync_perf; every number is measured on it."""

from wedsync_api.app import create_app

__all__ = ["create_app"]
