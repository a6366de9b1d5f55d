from relais.gateway.service import main

main()
