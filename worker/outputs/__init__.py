"""What an output is: its name rules, template, file identity and the view of its place.

The checks every output passes use these (worker/encode/output_contract.py), as do the
job model and the settings.
"""

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
