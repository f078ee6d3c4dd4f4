"""Dataset factories, one file per format: idx (MNIST, Fashion-MNIST), npz, image_folder, cifar10, synthetic;
``builtin`` registers the built-in names and ``defined`` the datasets a suite names by path."""
