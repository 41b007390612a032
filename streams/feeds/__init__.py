"""What the generic feeds share: decoding frames, the field mapping, and the connector base they build on."""
