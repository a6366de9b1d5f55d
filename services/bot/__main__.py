from relais.bot.service import main

main()
