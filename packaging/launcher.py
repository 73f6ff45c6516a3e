"""The bundle's entry point: the installed `workbench` command (not the checkout's files)."""

from workbench.cli import main

raise SystemExit(main())
