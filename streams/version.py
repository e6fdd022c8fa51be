"""The running newsflow version, stamped into every record's pipeline section."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("newsflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    VERSION = "0.0.0+source"
