"""`python -m faqbot ...` entry point."""

from faqbot.cli import main

raise SystemExit(main())
