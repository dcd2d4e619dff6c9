from anonpriv.cli import main

main()
