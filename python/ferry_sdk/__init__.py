"""ferry's Python model SDK.

A model is a class deriving from :class:`ferry_sdk.Model` in a ``model.py`` file. ferry
runs it in worker processes (one per model instance), hands it numpy arrays that lie in
shared memory and sends its numpy results back. See docs/runtimes.md ("Python models").
"""

from ferry_sdk.model import InvalidInput, Model, ModelContext

__all__ = ["InvalidInput", "Model", "ModelContext"]
__version__ = "0.1.0"
