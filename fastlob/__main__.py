import sys

from fastlob.cli import main

sys.exit(main())
