"""`ganforge project`: images back to the latents that make them."""

from __future__ import annotations

from ganforge import api
from ganforge.cli._progress import lazy_bar
from ganforge.explore.project import INITS, SPACES

HELP = "find the latent of each image (projection), with its reconstruction"


def add_arguments(p) -> None:
    p.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    p.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder: per image NAME.latent.safetensors, NAME.png "
                                                "(the reconstruction) and NAME.strip.png (before / after)")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps per image (default 200)")
    p.add_argument("--space", choices=SPACES, default=None,
                   help="latent space: z (any generator; the default), w or w+ (a style-based one; w+ its default)")
    p.add_argument("--init", choices=INITS, default=None,
                   help="start from the mean latent, or from the model's encoder (its default when it has one)")
    p.add_argument("--class", dest="c", type=int, help="the images' class (conditional generators; default: searched)")
    p.add_argument("--feature-net", help="NAME.json of `ganforge featurenet train` for the feature term "
                                         "(default: the run's eval.feature_net, or the net shipped for its data)")
    p.add_argument("--pixel-weight", type=float, default=1.0, help="weight of the mean squared pixel error (default 1)")
    p.add_argument("--feature-weight", type=float, default=1.0, help="weight of the feature distance (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search's noise (default 0)")


def run(args) -> int:
    G = api.load_generator(args.source)
    space = args.space or (G.encoder_space if G.E is not None else "w+" if G.num_ws else "z")
    init = args.init or ("encoder" if G.E is not None and G.encoder_space == space else "mean")
    with lazy_bar("step", f"projecting ({space}, from the {init})") as progress:
        out, records = api.project(G, args.input, args.out, args.steps, space, init, args.c, args.feature_net,
                                   args.pixel_weight, args.feature_weight, args.seed, progress)
    mse = sum(r["pixel_mse"] for r in records) / len(records)
    print(f"{len(records)} image(s) projected into {out} ({space}, from the {init}, {args.steps} steps, "
          f"{records[0]['distance']}); mean pixel MSE {mse:.4f}")
    return 0
