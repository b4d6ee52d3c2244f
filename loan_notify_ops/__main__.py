import sys

from loan_notify_ops.cli import main

sys.exit(main())
