from relais.intake.service import main

main()
