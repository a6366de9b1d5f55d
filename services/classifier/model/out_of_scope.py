"""The "none of the above" class: its label and the examples it is trained on."""

from __future__ import annotations

# "None of the above": things people also type into a contact-centre chat. Trained as one extra
# class so that a message about something else loses to it rather than to the nearest intent
# ("combien font..." is not account_balance). Never reported as an intent.
OUT_OF_SCOPE_LABEL = "__out_of_scope__"
BACKGROUND_EXAMPLES: dict[str, tuple[str, ...]] = {
    "fr": (
        "Comment vas-tu aujourd'hui ?", "Tu t'appelles comment ?", "Quelle heure est-il à New York ?",
        "Je cherche un billet de train pour Marseille", "Peux-tu me réserver une table au restaurant ce soir ?",
        "Quel est le meilleur forfait téléphone en ce moment ?", "Comment installer Python sur mon ordinateur ?",
        "Mon vol pour Madrid est-il à l'heure ?", "Quels sont les symptômes de la grippe ?",
        "Chante-moi une chanson", "Écris un poème sur la mer", "Qui va gagner les élections ?",
        "Combien d'habitants y a-t-il au Canada ?", "Combien de kilomètres entre Paris et Lyon ?",
        "Quel est mon signe astrologique si je suis né en mars ?", "Donne-moi les numéros gagnants du loto",
        "Tu peux m'aider pour mes devoirs ?", "Quelle est la hauteur de la tour Eiffel ?",
        "Tu préfères les chats ou les chiens ?", "Mon chien ne mange plus, que faire ?",
        "Je veux apprendre à jouer de la guitare", "C'est quoi la différence entre un virus et une bactérie ?",
        "Où peut-on voir des aurores boréales ?", "Quel âge a le président ?",
        "Je m'ennuie, parle-moi de quelque chose", "Est-ce que tu rêves la nuit ?",
        "Quel est le cours du bitcoin aujourd'hui ?", "Comment changer une roue de voiture ?",
        "Je voudrais réserver un hôtel à Nice", "Appelle un taxi pour moi",
        "Quand a eu lieu la Révolution française ?", "Pourquoi le ciel est bleu ?",
        "J'ai besoin d'un plombier", "Mets de la musique", "Comment perdre du poids rapidement ?",
        "Quelle est la meilleure voiture électrique ?", "Aide-moi à écrire ma lettre de motivation",
        "Tu es marié ?", "Salut ça va", "Quelle est la vitesse de la lumière ?",
        "Combien coûte un billet d'avion pour Rome ?", "Combien de langues parles-tu ?",
        "Combien de temps faut-il pour aller sur la Lune ?",
    ),
    "en": (
        "How are you today?", "What's your name?", "What time is it in Tokyo?",
        "I need a train ticket to Brighton", "Can you book me a table for two tonight?",
        "Which phone plan is the cheapest right now?", "How do I install Python on my laptop?",
        "Is my flight to Madrid on time?", "What are the symptoms of flu?",
        "Sing me a song", "Write a poem about the sea", "Who will win the next election?",
        "How many people live in Canada?", "How far is London from Edinburgh?",
        "What's my star sign if I was born in March?", "Give me the winning lottery numbers",
        "Can you help with my homework?", "How tall is the Eiffel Tower?",
        "Do you prefer cats or dogs?", "My dog won't eat, what should I do?",
        "I want to learn to play the guitar", "What's the difference between a virus and bacteria?",
        "Where can I see the northern lights?", "How old is the king?",
        "I'm bored, chat with me about anything", "Do you dream at night?",
        "What's the bitcoin price today?", "How do I change a car tyre?",
        "I'd like to book a hotel in Nice", "Call me a taxi",
        "When did World War Two end?", "Why is the sky blue?",
        "I need a plumber", "Play some music", "How can I lose weight fast?",
        "What's the best electric car?", "Help me write a cover letter",
        "Are you married?", "hey whats up", "What is the speed of light?",
        "How much is a plane ticket to Rome?", "How many languages do you speak?",
        "How long does it take to get to the moon?",
    ),
}
