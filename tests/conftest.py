import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# tests/torch_models.py and the sample_models package import as top-level modules.
for p in (HERE, HERE.parent):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
