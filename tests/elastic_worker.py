"""Run by torchrun from test_distributed.py: `ganforge train` as the CLI runs it, except that on the
group's first attempt rank 1 dies by SIGKILL before its (K+1)-th step, a lost worker as
`torchrun --max-restarts` sees one (K = 0: nobody dies).

    torchrun --standalone --nproc_per_node=2 --max-restarts=1 tests/elastic_worker.py K key=value ...
"""

import os
import signal
import sys

from ganforge import api, validate
from ganforge.recipes.gan import GANRecipe


def die_after(steps: int) -> None:
    calls, train_step = {"n": 0}, GANRecipe.train_step

    def lost(self, batch):
        calls["n"] += 1
        if calls["n"] > steps:
            os.kill(os.getpid(), signal.SIGKILL)
        return train_step(self, batch)

    GANRecipe.train_step = lost


def main():
    kill_after, overrides = int(sys.argv[1]), sys.argv[2:]
    if kill_after and os.environ["RANK"] == "1" and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
        die_after(kill_after)
    api.train(validate.load(None, overrides))


if __name__ == "__main__":
    main()
