"""vqbench's Hydra config files. Importing this package (Hydra does, to read them) registers the
typed schema (vqbench.run.schema) that the files select from and override."""

from vqbench.run.schema import register

register()
