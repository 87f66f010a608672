"""Small example workloads for ``python -m matrix scan`` (no weights needed: seeded random parameters).

    python -m matrix scan matrix.examples.toy_unet:denoise_step
    python -m matrix scan matrix.examples.text_generation:generate_step

Each module defines ``example_inputs()``, which scan calls to build the target's arguments (the model
included, so building it is not part of the scanned workload).
"""
