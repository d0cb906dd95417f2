"""vqbench's Hydra config files. Importing this package (Hydra does, to read them) registers the
typed schema (vqbench.run.schema, with the optimizers of vqbench.training's registry) that the
files select from and override."""

import vqbench.training  # noqa: F401  (its registry adds the optimizer options to the schema)
from vqbench.run.schema import register

register()
