"""The gRPC service behind the OpenAI-compatible image API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bedrock-images")  # pyproject.toml is the one source
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
