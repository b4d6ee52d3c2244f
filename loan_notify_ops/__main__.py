"""`python -m loan_notify_ops`: the same command as the `loan-notify-ops` console script."""
import sys

from loan_notify_ops.cli import main

sys.exit(main())
