"""The `resnet-repro` command line, the top layer: it imports everything, nothing imports it.

`main` builds the parser from one module per group of subcommands (`train`, `analysis`,
`probes`, `published`, `bench`); `common` holds what they share and imports none of them.
Each subcommand reads files, calls the package's functions and writes files; bad input ends
with one line on stderr and exit status 2.
"""
