"""The data directory (数据目录): the model of a directory file, its loader, its versions in the hub DB."""
