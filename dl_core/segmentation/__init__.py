"""Lesson 14: semantic segmentation of street scenes (CamVid) with a U-Net and its skip-free ablation.

The class names live here, free of torch, so the app can lay out its tab without loading a model."""

# The SegNet release's label order (its codes.txt), Void last: what the bundled models predict.
CAMVID_CLASSES = ["Sky", "Building", "Pole", "Road", "Sidewalk", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                  "Bicyclist"]
CAMVID_VOID = 11
