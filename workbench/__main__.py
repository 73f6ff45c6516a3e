import logging

from workbench.cli import main

log = logging.getLogger(__name__)

raise SystemExit(main())
