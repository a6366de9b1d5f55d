from relais.analytics.service import main

main()
