"""`ganforge restore`: fill in, sharpen or upsample images with a completion model or any GAN."""

from __future__ import annotations

from ganforge import api
from ganforge.cli._progress import lazy_bar
from ganforge.explore.inpaint import BLENDS, PRIOR_WEIGHT
from ganforge.explore.project import SPACES

HELP = "restore images: a completion model (inpainting, denoising, deblurring, super-resolution) or any GAN's G"


def add_arguments(p) -> None:
    p.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    p.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder: per image NAME.png (restored) and NAME.strip.png "
                                                "(input beside result), and restorations.json")
    p.add_argument("--mask", help="the missing pixels (white): one image for every input, or a folder with a mask "
                                  "per input under the same name; needed by inpainting models and by a GAN")
    p.add_argument("--steps", type=int, default=1000, help="a GAN's search steps per batch of images (default 1000)")
    p.add_argument("--prior-weight", type=float, default=PRIOR_WEIGHT,
                   help=f"lambda of D's prior beside the context loss (default {PRIOR_WEIGHT}, Yeh et al.'s)")
    p.add_argument("--blend", choices=BLENDS, default="poisson", help="how a GAN's fill meets the known pixels")
    p.add_argument("--space", choices=SPACES, default=None, help="a GAN's search space (default z; w for a style-based G)")
    p.add_argument("--class", dest="c", type=int, help="the images' class (conditional GANs; default: searched)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search's noise (default 0)")


def run(args) -> int:
    with lazy_bar("image", "restoring") as progress:
        out, records = api.restore(args.source, args.input, args.out, args.mask, args.steps, args.prior_weight,
                                   args.blend, args.space, args.c, args.seed, progress)
    print(f"{len(records)} image(s) restored into {out} ({records[0]['method']})")
    return 0
