"""Models with Trax's names and signatures, built from `pax_trax.nn` layers."""
