from relais.lookup.service import main

main()
