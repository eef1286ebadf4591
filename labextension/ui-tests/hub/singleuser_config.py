"""The single-user server's settings in the hub phase (passed with --config by jupyterhub_config.py).

A root folder with a script, and a conda installation in conda's on-disk layout
(``tests/condaenv.py``) with the env ``hubenv``, under the Hub's run folder.
Services get a unit prefix of their own per Hub run (``chub<hex>-``). No port here: the Hub
chooses it (JUPYTERHUB_SERVICE_URL).
"""
import hashlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent.parent / "tests"))

from condaenv import make_conda_root  # noqa: E402

# The same folders and prefix for every spawn of one Hub run: a service created
# before "Stop My Server" is the restarted server's service too.
run = Path(os.environ["CONDASVC_HUB_RUN"]) / "singleuser"
root = run / "root"
root.mkdir(parents=True, exist_ok=True)
(root / "hubticker.py").write_text(
    "import time\n"
    "n = 0\n"
    "print('hub ticker starting', flush=True)\n"
    "while True:\n"
    "    n += 1\n"
    "    print(f'hub tick {n}', flush=True)\n"
    "    time.sleep(1)\n"
)
conda = run / "conda"
if not (conda / "envs" / "hubenv" / "conda-meta").is_dir():
    make_conda_root(conda, ["hubenv"])
prefix = "chub" + hashlib.sha256(str(run).encode()).hexdigest()[:6] + "-"

c = get_config()  # noqa: F821
c.ServerApp.root_dir = str(root)
c.EnvironmentFinder.conda_roots = [str(conda)]
c.EnvironmentFinder.use_conda_executable = False
c.CondaSvcApp.unit_prefix = prefix
c.KernelSpecManager.ensure_native_kernel = False
