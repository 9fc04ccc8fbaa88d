"""The output contract: identity, names, claims and the checks every output passes."""

from worker.outputs.names import MAX_NAME_BYTES, fit_name, numbered, temp_name
from worker.outputs.view import BlindView, LocalView, OutputView

__all__ = [
    "MAX_NAME_BYTES",
    "BlindView",
    "LocalView",
    "OutputView",
    "fit_name",
    "numbered",
    "temp_name",
]
