"""aris3nb — the ARIS3 Recovery Playbook as executable, auditable evidence notebooks."""

from aris3nb.config import Settings, load_settings
from aris3nb.errors import Aris3nbError

__version__ = "0.1.0"

__all__ = ["Aris3nbError", "Settings", "__version__", "load_settings"]
