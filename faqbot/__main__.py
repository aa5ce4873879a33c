"""`python -m faqbot ...` entry point."""

from faqbot.ops.cli import main

raise SystemExit(main())
