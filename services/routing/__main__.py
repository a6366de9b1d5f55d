from relais.routing.service import main

main()
