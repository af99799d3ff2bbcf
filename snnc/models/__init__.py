"""Networks built from genotypes: SpikeDHS classification and stereo nets, SNASNet nets."""
