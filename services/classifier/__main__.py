from relais.classifier.service import main

main()
