"""What the demo's callers say: themes, questions, moods and languages of the user turns.

:mod:`tavus_analytics.demo` draws the shape of every transcript (how many turns, whose, how many
sentences each) from its one random stream; this module decides what the sentences are about,
so that content analysis has something real to find. Each conversation gets a :class:`Voice`
from :func:`voice`, drawn from a random stream of its own (seeded with the conversation id), so
that changing these texts never changes the number, order or timing of the callbacks.

What a caller talks about
-------------------------
* **A theme** per call, by persona: technical trouble, billing, cancellation and scheduling for
  the support persona; product evaluation, scheduling, billing and cancellation for sales;
  interview practice, travel, and language lessons for the other three. Billing calls are more
  frequent on the 1st to the 3rd of a month (after the invoice run), cancellations grow over the
  period, and technical trouble quadruples during an outage (:data:`INCIDENT`, as a share of the
  period).
* **Questions**: each theme has question intents, each in three or four wordings; a call asks
  two or three intents of its theme, one wording each, so that the same question comes back in
  different words across calls.
* **A mood**: ``neutral``; ``sour`` (starts neutral, ends with complaints); ``delighted``
  (praise, mostly at the end); ``relieved`` (upset at first, happy at the end). Sour calls are
  more frequent for technical trouble and cancellations, during the outage, and on the support
  persona's last replica (:func:`voice`'s ``struggling``).
* **A language**: English, except the language lessons (Spanish or French) and about 6 % of
  the support and sales calls (Spanish or French, on the same themes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["INCIDENT", "THEMES", "Voice", "voice"]

#: The outage, as a share of the demo period (0: its start, 1: its end): technical trouble
#: quadruples and sours.
INCIDENT = (0.60, 0.72)

_FILLERS = {
    "en": [
        "Okay.",
        "Yes, that's right.",
        "Mm-hmm.",
        "Right.",
        "Got it.",
        "One second, let me check.",
    ],
    "es": ["Vale.", "Sí, claro.", "Un momento."],
    "fr": ["D'accord.", "Oui, c'est ça.", "Un instant."],
}
# Asking the other side to repeat: now and then, in the middle of a call.
_REPEAT = {
    "en": "Sorry, could you say that again?",
    "es": "Perdón, ¿puede repetirlo?",
    "fr": "Pardon, vous pouvez répéter ?",
}

# A theme: what a caller states (``statements``), the question intents (each a list of
# wordings of one question) and what the assistant answers. Keys of languages other than English
# hold the same themes in that language.
THEMES: dict[str, dict[str, dict[str, list]]] = {
    "technical": {
        "en": {
            "statements": [
                "Hi, my website has been down since this morning.",
                "I'm getting a five oh two bad gateway error on every page.",
                "I changed some firewall rules yesterday and now I can't SSH into the server.",
                "Our database keeps saying too many connections.",
                "The server is called web-prod-2, it's in Frankfurt.",
                "Our certificate expired and browsers are showing a warning.",
                "The error says: permission denied, public key.",
                "We're migrating from another provider and the import failed halfway.",
                "I lost my phone, so I can't get the two-factor codes anymore.",
                "Okay, I'm in the Cloud Firewall page now.",
                "I see a rule that only allows port four four three.",
                "Hmm, it still says connection refused.",
                "The DNS is managed somewhere else, at our old registrar.",
                "It started around nine, maybe a bit before.",
            ],
            "questions": [
                [
                    "Is there an outage right now?",
                    "Is something down on your side?",
                    "Are your servers having problems today?",
                    "Can you check if there's an outage in Amsterdam right now?",
                ],
                [
                    "Why is my website down?",
                    "Why is my site not loading?",
                    "Why can't anyone reach my website?",
                ],
                [
                    "Do I need to restart anything after that?",
                    "Should I restart the server now?",
                    "Do I have to restart the server for this to work?",
                ],
                [
                    "Is there a way to get alerts before the disk fills up?",
                    "Can I get an alert when the disk is almost full?",
                    "How do I set up alerts for disk space?",
                ],
                [
                    "How do I reset my password?",
                    "Can you help me reset my password?",
                    "How can I reset my password and my two-factor codes?",
                ],
            ],
            "answers": [
                "There's no platform incident in that region right now, so it's likely "
                "configuration.",
                "Let's check the firewall first, since you changed it recently.",
                "No restart is needed; firewall changes apply within a few seconds.",
                "You can set up disk alerts under Monitoring, Alert Policies.",
                "We're seeing elevated errors in that region; the team is on it.",
            ],
        },
        "es": {
            "statements": [
                "Mi sitio web no funciona desde esta mañana.",
                "Recibo un error cinco cero dos en todas las páginas.",
                "No puedo entrar al servidor por SSH.",
                "La base de datos dice que hay demasiadas conexiones.",
            ],
            "questions": [
                [
                    "¿Hay una caída del servicio ahora mismo?",
                    "¿Hay algún problema en sus servidores?",
                ],
                ["¿Por qué no carga mi sitio web?", "¿Por qué mi página no funciona?"],
            ],
            "answers": [],
        },
        "fr": {
            "statements": [
                "Mon site ne fonctionne plus depuis ce matin.",
                "J'ai une erreur cinq cent deux sur toutes les pages.",
                "Je n'arrive plus à me connecter au serveur en SSH.",
                "La base de données refuse les connexions.",
            ],
            "questions": [
                [
                    "Est-ce qu'il y a une panne en ce moment ?",
                    "Vous avez un problème sur vos serveurs ?",
                ],
                ["Pourquoi mon site ne charge plus ?", "Pourquoi mon site est en panne ?"],
            ],
            "answers": [],
        },
    },
    "billing": {
        "en": {
            "statements": [
                "I was charged twice this month and I'd like to understand why.",
                "There are two charges on my card for the same invoice.",
                "My bill went up this month and nobody told me.",
                "I switched to the monthly plan but I was billed for a whole year.",
                "The invoice shows forty-nine dollars, but my plan is nine.",
                "I need a copy of last month's invoice for our accountant.",
                "Our company card expired, so the last payment failed.",
                "We need our VAT number on the invoices.",
            ],
            "questions": [
                [
                    "Why was I charged twice this month?",
                    "Why are there two charges on my card?",
                    "Can you explain why I was charged twice?",
                    "How come I got charged twice for the same month?",
                ],
                [
                    "Can I get a refund for the duplicate charge?",
                    "Could you refund the extra charge?",
                    "Is it possible to get a refund for the extra charge?",
                    "How do I get a refund?",
                ],
                [
                    "Where can I download my invoices?",
                    "Where do I find last month's invoice?",
                    "How can I download an invoice for my accountant?",
                ],
                [
                    "How do I update my credit card?",
                    "How can I change the credit card on file?",
                    "Can I change my payment method to a new card?",
                ],
            ],
            "answers": [
                "I can see both charges on your account.",
                "The second charge is a prorated upgrade from the fifth of the month.",
                "I've asked the billing team to refund the duplicate charge.",
                "Invoices are under Settings, Billing, and each one downloads as a PDF.",
                "You can update the card under Settings, Billing, Payment method.",
            ],
        },
        "es": {
            "statements": [
                "Me cobraron dos veces este mes.",
                "Hay dos cargos en mi tarjeta por la misma factura.",
                "La factura de este mes es más alta de lo normal.",
            ],
            "questions": [
                ["¿Por qué me cobraron dos veces?", "¿Por qué hay dos cargos en mi tarjeta?"],
                ["¿Me pueden devolver el cargo duplicado?", "¿Puedo pedir un reembolso?"],
                [
                    "¿Dónde puedo descargar mis facturas?",
                    "¿Dónde encuentro la factura del mes pasado?",
                ],
            ],
            "answers": [],
        },
        "fr": {
            "statements": [
                "On m'a facturé deux fois ce mois-ci.",
                "Il y a deux prélèvements sur ma carte pour la même facture.",
                "La facture de ce mois est plus élevée que d'habitude.",
            ],
            "questions": [
                ["Pourquoi ai-je été facturé deux fois ?", "Pourquoi il y a deux prélèvements ?"],
                [
                    "Est-ce que vous pouvez me rembourser le prélèvement en double ?",
                    "Je peux être remboursé ?",
                ],
                [
                    "Où est-ce que je peux télécharger mes factures ?",
                    "Où est ma dernière facture ?",
                ],
            ],
            "answers": [],
        },
    },
    "cancellation": {
        "en": {
            "statements": [
                "I want to cancel my subscription.",
                "We're moving to another provider at the end of the month.",
                "We don't use the account anymore, so I'd like to close it.",
                "Honestly, it's too expensive for what we use.",
                "My manager asked me to cancel all our seats.",
                "I'd like to downgrade before the next renewal.",
            ],
            "questions": [
                [
                    "How do I cancel my subscription?",
                    "How can I cancel my plan?",
                    "Can you cancel my subscription today?",
                    "What do I need to do to cancel my account?",
                ],
                [
                    "What happens to my data if I cancel?",
                    "Will I lose my data when I cancel?",
                    "Do you delete our data after we close the account?",
                    "How long do you keep my data after I cancel?",
                ],
                [
                    "Can I downgrade to a cheaper plan?",
                    "Is there a cheaper plan I could switch to?",
                    "How do I downgrade my plan?",
                ],
                [
                    "Is there a fee to cancel before the end of the contract?",
                    "Do I have to pay a cancellation fee?",
                    "Will you charge me a fee for cancelling early?",
                ],
            ],
            "answers": [
                "I'm sorry to hear you're leaving.",
                "You can cancel under Settings, Plan; it takes effect at the end of the billing "
                "period.",
                "Your data is kept for thirty days after cancellation, then deleted.",
                "Before you go, the Starter plan might cover what you use.",
                "There's no cancellation fee on monthly plans.",
            ],
        },
        "es": {
            "statements": [
                "Quiero cancelar mi suscripción.",
                "Es demasiado caro para lo que usamos.",
                "Nos vamos a otro proveedor a fin de mes.",
            ],
            "questions": [
                ["¿Cómo cancelo mi suscripción?", "¿Cómo puedo cancelar mi cuenta?"],
                ["¿Qué pasa con mis datos si cancelo?", "¿Borran mis datos si cancelo?"],
            ],
            "answers": [],
        },
        "fr": {
            "statements": [
                "Je voudrais résilier mon abonnement.",
                "C'est trop cher pour ce que nous utilisons.",
                "Nous passons chez un autre fournisseur à la fin du mois.",
            ],
            "questions": [
                [
                    "Comment est-ce que je résilie mon abonnement ?",
                    "Comment résilier mon abonnement ?",
                ],
                [
                    "Qu'est-ce qui arrive à mes données si je résilie ?",
                    "Vous gardez mes données après la résiliation ?",
                ],
            ],
            "answers": [],
        },
    },
    "scheduling": {
        "en": {
            "statements": [
                "I need to move our appointment to another day.",
                "Something came up and I can't make it on Thursday.",
                "I'd like to book a follow-up for next week.",
                "Mornings are better for me, before ten if possible.",
                "My colleague should join the next call as well.",
                "I'm in a different time zone, I'm in Singapore.",
            ],
            "questions": [
                [
                    "Can I reschedule my appointment?",
                    "Could we reschedule our meeting to another day?",
                    "Is it possible to reschedule the session?",
                    "Can we move our appointment to Friday?",
                ],
                [
                    "What times are available next week?",
                    "Which time slots are available on Friday?",
                    "Do you have any availability next Tuesday morning?",
                    "When is the next available slot?",
                ],
                [
                    "Can we book a follow-up call?",
                    "Could you schedule a follow-up call for next week?",
                    "Can I book another session with you?",
                ],
                [
                    "Will I get a reminder before the meeting?",
                    "Do you send a reminder email before the appointment?",
                    "Can you send me a calendar invite?",
                ],
            ],
            "answers": [
                "Of course, let me check the calendar.",
                "I have Tuesday at ten or Thursday at three; which works better?",
                "Done, you're booked for Tuesday at ten.",
                "You'll get a calendar invitation and a reminder an hour before.",
                "I've moved your appointment; the old slot is released.",
            ],
        },
    },
    "evaluation": {  # the sales persona's own calls: a product demo
        "en": {
            "statements": [
                "Hi Jordan, I'm Priya, I run sales operations at a logistics startup.",
                "We have about twelve reps, growing to twenty by next quarter.",
                "Right now it's a mess of spreadsheets and a very old Pipedrive account.",
                "The biggest problem is forecasting, nobody trusts the numbers.",
                "Our CFO will want to see the security documentation.",
                "That looks nice, but can I customise the stages?",
                "We tried HubSpot last year and it was way too expensive for us.",
                "I'd need to talk to my manager before committing to anything.",
                "Honestly, the price is a bit higher than I expected.",
                "It's priya at fastlane logistics dot io.",
            ],
            "questions": [
                [
                    "Do you integrate with Slack?",
                    "Is there a Slack integration?",
                    "Can Nimbus post our deals to Slack?",
                ],
                [
                    "What does Pro cost per seat?",
                    "How much is the Pro plan per user?",
                    "What's the price per seat for Pro?",
                ],
                [
                    "Can we keep our data in the EU?",
                    "Do you host our data in the EU?",
                    "Is our data stored in the EU?",
                ],
                [
                    "How long does a migration usually take?",
                    "How long would a migration from Pipedrive take?",
                    "How long does it take to migrate our data?",
                ],
                [
                    "How does the email sync work with Outlook?",
                    "Does the email sync work with Outlook?",
                    "Can reps log calls from their phones?",
                ],
            ],
            "answers": [],
        },
    },
    "interview": {  # the interview coach's own calls
        "en": {
            "statements": [
                "I have a final-round interview for a product manager role next week.",
                "It's a backend engineering position at a fintech company.",
                "I always ramble when they ask me to tell them about myself.",
                "So, um, I started my career in consulting and then moved into product.",
                "In my last job I led the migration of our billing system to a new provider.",
                "There was a conflict with the design lead about the roadmap.",
                "We ended up shipping two weeks late, but the error rate dropped by forty percent.",
                "I guess my biggest weakness is that I take on too much myself.",
                "I think I forgot the result part again.",
                "Okay, let me try: the situation was a failing launch two weeks before Black "
                "Friday.",
                "My team was four engineers and one designer.",
                "We measured success by checkout conversion.",
            ],
            "questions": [
                [
                    "How long should that answer be, roughly?",
                    "How long should my answers be?",
                    "What's a good length for an answer?",
                ],
                [
                    "What kind of questions should I ask them at the end?",
                    "What questions should I ask the interviewer?",
                    "Which questions should I ask at the end of the interview?",
                ],
                [
                    "Should I mention the salary expectations if they don't ask?",
                    "When should I bring up salary?",
                    "Should I talk about salary in the first interview?",
                ],
                [
                    "I was nervous, could you tell?",
                    "Did I look nervous?",
                    "Could you tell that I was nervous?",
                ],
                [
                    "Can we try that question again?",
                    "Can we do that question again?",
                    "Could we try that answer one more time?",
                ],
            ],
            "answers": [],
        },
    },
    "travel": {  # the concierge's own calls
        "en": {
            "statements": [
                "Hi Kenji, we're staying at your Kyoto hotel next week.",
                "We're vegetarian, is that going to be a problem?",
                "We'd love to see Fushimi Inari without the crowds.",
                "Can you book a table for four on Friday at seven?",
                "The name is Dubois, D-U-B-O-I-S.",
                "すみません、英語が少し苦手です。",
                "ありがとうございます!",
                "Amazing, thank you! 🙏",
                "我们想去看樱花,哪里比较好?",
                "Great.",
            ],
            "questions": [
                [
                    "Can you recommend a good ramen place near the hotel?",
                    "Do you know a good ramen restaurant nearby?",
                    "Where can we get good ramen near the hotel?",
                ],
                [
                    "How do we get from Kansai airport to the hotel?",
                    "What's the best way from Kansai airport to the hotel?",
                    "How do we get to the hotel from the airport?",
                ],
                [
                    "Is the JR Pass worth it if we only go Tokyo to Kyoto and back?",
                    "Should we buy a JR Pass for one round trip?",
                    "Is a JR Pass worth it for Tokyo to Kyoto?",
                ],
                [
                    "What time is breakfast served?",
                    "When is breakfast served?",
                    "What are the breakfast hours?",
                ],
                [
                    "Can we send our luggage to the Osaka hotel?",
                    "Can you forward our luggage to the Osaka hotel?",
                    "Is it possible to send our bags to the Osaka hotel?",
                ],
            ],
            "answers": [],
        },
    },
    "lesson": {  # the tutor's own calls, in Spanish or in French
        "es": {
            "statements": [
                "Hola Lucía, quiero practicar español hoy.",
                "Mi semana fue muy ocupada, trabajé mucho.",
                "El fin de semana pasado fui a la playa con mis amigos.",
                "No sé cómo se dice 'to look forward to' en español.",
                "Me gusta mucho la comida mexicana, sobre todo los tacos al pastor.",
                "En el futuro quiero vivir en Barcelona.",
                "Sí, sí, entiendo.",
                "Estaba muy cansado porque no dormí bien.",
                "Mi jefe es simpático pero muy exigente.",
                "Creo que es... ¿cómo se dice... 'rainy'?",
                "Oh, I see, thanks.",
            ],
            "questions": [
                [
                    "¿Puedes hablar un poco más despacio, por favor?",
                    "¿Podrías hablar más despacio?",
                    "¿Puedes hablar más lento, por favor?",
                ],
                [
                    "¿Cómo se dice 'deadline' en español?",
                    "¿Cómo se dice 'to look forward to'?",
                    "¿Cómo se dice 'rainy' en español?",
                ],
                [
                    "¿Cuál es la diferencia entre ser y estar?",
                    "¿Cuándo uso ser y cuándo uso estar?",
                    "No entiendo la diferencia entre ser y estar, ¿me ayudas?",
                ],
            ],
            "answers": [
                "¡Muy bien! Cuéntame, ¿qué hiciste el fin de semana?",
                "Ah, fuiste a la playa. ¿Hacía buen tiempo?",
                "Se dice 'tener ganas de': tengo ganas de verte.",
                "Claro, hablo más despacio.",
                "Se dice 'lluvioso'. Hoy es un día lluvioso.",
                "¡Qué rico! Los tacos al pastor llevan piña, ¿lo sabías?",
                "Una pequeña corrección: 'estaba cansado', con estar, porque es temporal.",
                "Nueva palabra: 'exigente', que significa demanding en inglés.",
                "Perfecto, tu pronunciación está mejorando mucho.",
                "¿Y por qué Barcelona? ¿Qué te gusta de la ciudad?",
                "La última vez hablamos de tu trabajo; ¿cómo va el proyecto nuevo?",
                "Exacto. ¿Puedes hacer una frase con 'tener ganas de'?",
            ],
        },
        "fr": {
            "statements": [
                "Je voudrais pratiquer mon français, s'il te plaît.",
                "Hier, je suis allé au marché et j'ai acheté des légumes.",
                "C'est difficile, le subjonctif. 😅",
                "Je ne comprends pas la différence entre « connaître » et « savoir ».",
                "Ce week-end, j'ai visité un musée avec ma sœur.",
                "Je travaille dans une banque depuis trois ans.",
                "J'aimerais voyager au Québec l'année prochaine.",
                "D'accord.",
                "Oh, I see, thanks.",
            ],
            "questions": [
                [
                    "Tu peux parler plus lentement, s'il te plaît ?",
                    "Est-ce que tu peux parler un peu plus lentement ?",
                    "Tu pourrais parler plus lentement ?",
                ],
                [
                    "Comment dit-on « rainy » en français ?",
                    "Comment on dit « deadline » en français ?",
                    "Comment dit-on « to look forward to » ?",
                ],
                [
                    "Quelle est la différence entre « connaître » et « savoir » ?",
                    "Tu peux m'expliquer la différence entre « connaître » et « savoir » ?",
                ],
            ],
            "answers": [
                "Très bien ! Et qu'est-ce que tu as cuisiné avec ces légumes ?",
                "Attention : on dit « je suis allé », avec être, très bien.",
                "« Connaître » s'utilise pour une personne ou un lieu, « savoir » pour un fait.",
                "On révise : le subjonctif après « il faut que ». Il faut que tu viennes.",
                "Bien sûr, je parle plus lentement.",
                "Super ! Et qu'est-ce que tu as préféré au musée ?",
                "On dit « pleuvoir » : il pleut, c'est un jour pluvieux.",
            ],
        },
    },
}

# Theme weights per persona (before the time effects of :func:`voice`).
_PERSONA_THEMES = {
    "support": {"technical": 0.45, "billing": 0.25, "cancellation": 0.18, "scheduling": 0.12},
    "sales": {"evaluation": 0.55, "scheduling": 0.2, "billing": 0.15, "cancellation": 0.1},
    "interview": {"interview": 0.75, "scheduling": 0.15, "billing": 0.1},
    "concierge": {"travel": 0.7, "scheduling": 0.2, "billing": 0.1},
    "tutor": {"lesson": 1.0},
}

# What a caller says in each mood (English), by part of the call.
_MOOD_LINES = {
    "sour_middle": [
        "That's not what I was told last time.",
        "I've already explained this twice.",
        "This is taking way too long.",
        "Honestly, this is frustrating.",
        "I'm getting really annoyed with this.",
    ],
    "sour_end": [
        "This is ridiculous, nothing you suggested works.",
        "I'm really disappointed with the service.",
        "This is the worst support experience I've had.",
        "Forget it, I'm wasting my time here.",
        "I'm very unhappy about this and I'm going to complain.",
        "Terrible. I expected much better.",
        "I'm so frustrated, this is a waste of my time.",
    ],
    "upset_start": [
        "I'm really stressed, this is a disaster for us.",
        "Honestly I'm pretty upset about this.",
        "This has been a terrible morning.",
        "I'm worried we're losing customers because of this.",
    ],
    "happy": [
        "This is great, thank you!",
        "Wow, that's really helpful.",
        "I love how easy that was.",
        "You've been super helpful today.",
        "That's excellent news.",
        "Fantastic, that's exactly what I hoped for.",
    ],
    "polite_end": ["Thanks, that helps.", "Good, that answers my question."],
}
_SOUR_FOREIGN = {
    "es": [
        "Esto es inaceptable.",
        "Estoy muy molesto con el servicio.",
        "Es la tercera vez que llamo.",
    ],
    "fr": [
        "C'est inacceptable.",
        "Je suis très mécontent du service.",
        "C'est la troisième fois que j'appelle.",
    ],
}
_APOLOGIES = [
    "I'm sorry for the trouble, I understand this is frustrating.",
    "I apologise, let me try another way.",
]

# The caller's last words (six each: the demo draws one of six).
_LAST_WORDS = {
    ("en", "neutral"): [
        "Okay.",
        "Yes, that's right.",
        "Thanks.",
        "No, I think that's everything.",
        "Alright, thank you.",
        "Got it.",
    ],
    ("en", "sour"): [
        "Whatever. This was useless.",
        "No. I'm done, this is pointless.",
        "Fine, but I'm not happy about it.",
        "I'm extremely disappointed.",
        "This was a waste of my time.",
        "Bye.",
    ],
    ("en", "delighted"): [
        "Perfect, thank you so much!",
        "That's amazing, you've been a great help!",
        "Wonderful, I really appreciate it.",
        "Excellent, that's exactly what I needed!",
        "Great, thanks a lot!",
        "Brilliant, have a lovely day!",
    ],
    ("en", "relieved"): [
        "Oh, what a relief. Thank you!",
        "Great, it works now, thanks so much!",
        "Perfect, you saved my day!",
        "Wonderful, thank you for your patience.",
        "That's fantastic, thanks!",
        "Awesome, I really appreciate your help.",
    ],
    ("es", "neutral"): [
        "Vale, gracias.",
        "Sí, eso es todo.",
        "Perfecto.",
        "De acuerdo.",
        "¡Muchas gracias! Hasta la próxima. 👋",
        "Hasta luego.",
    ],
    ("fr", "neutral"): [
        "D'accord, merci.",
        "Oui, c'est tout.",
        "Parfait.",
        "Merci beaucoup, à la semaine prochaine !",
        "Ah, je comprends maintenant.",
        "Au revoir.",
    ],
}
_SUPPORT_ASSISTANT = {
    "es": [
        "Lo siento mucho, ahora mismo reviso su cuenta.",
        "Claro, le ayudo con eso.",
        "Veo los dos cargos en su cuenta.",
        "He abierto una incidencia con prioridad alta.",
        "¿Hay algo más en lo que pueda ayudarle?",
    ],
    "fr": [
        "Je suis désolée, je vérifie votre compte tout de suite.",
        "Bien sûr, je m'en occupe.",
        "Je vois les deux prélèvements sur votre compte.",
        "J'ai ouvert un ticket en priorité haute.",
        "Est-ce que je peux vous aider pour autre chose ?",
    ],
}
_GREETINGS = {
    "es": ["Hola, gracias por llamar. ¿En qué puedo ayudarle?", "¡Hola! ¿Qué tal? Cuénteme."],
    "fr": [
        "Bonjour, merci de votre appel. Comment puis-je vous aider ?",
        "Bonjour ! Je vous écoute.",
    ],
}
_CLOSERS = {
    "es": ["Gracias por llamar, ¡que tenga un buen día!", "¡Hasta pronto!"],
    "fr": ["Merci de votre appel, bonne journée !", "À bientôt !"],
}
_TUTOR_GREETINGS = {
    "es": ["¡Hola! Soy Lucía. ¿Practicamos español hoy?", "¡Hola de nuevo! ¿Qué tal tu semana?"],
    "fr": [
        "Bonjour ! C'est Lucía. On commence ?",
        "Re-bonjour ! Comment s'est passée ta semaine ?",
    ],
}
_TUTOR_CLOSERS = {
    "es": ["Hoy aprendiste 'tener ganas de', 'lluvioso' y 'exigente'. ¡Hasta pronto!"],
    "fr": ["Super leçon aujourd'hui. À la semaine prochaine !"],
}


@dataclass(frozen=True)
class Voice:
    """What one caller says: pools of sentences the demo draws the turns from.

    ``greetings`` and ``closers`` have as many entries as the persona's own lists and
    ``last_words`` six, so that the demo's random stream draws from them exactly as before.
    """

    theme: str
    mood: str
    language: str
    greetings: list[str]
    closers: list[str]
    last_words: list[str]
    user_pools: tuple[list[str], list[str], list[str]]  # opening, middle, end of the call
    assistant_pool: list[str]

    def user_pool(self, turn: int, turns: int) -> list[str]:
        """The sentences of the user's turn ``turn`` of ``turns``: its third of the call."""
        return self.user_pools[min(2, 3 * turn // max(turns, 1))]


def _same_length(lines: list[str], n: int) -> list[str]:
    return [lines[i % len(lines)] for i in range(n)]


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def voice(
    conversation_id: str,
    persona: dict,
    *,
    newness: float,
    day_of_month: int,
    struggling: bool,
) -> Voice:
    """The voice of one call, drawn from a random stream seeded with ``conversation_id``.

    Parameters
    ----------
    conversation_id : str
        Seeds this call's own random stream (the demo's stream is not touched).
    persona : dict
        The demo persona (its ``key``, ``user``, ``assistant``, ``greetings``, ``closers``).
    newness : float
        When the call happens, 0 at the start of the demo period, 1 at its end.
    day_of_month : int
        The call's day of the month (UTC): billing calls come after the invoice run, on the 1st
        to the 3rd.
    struggling : bool
        The call is on the replica whose calls go sour more often.
    """
    rng = random.Random(conversation_id)
    key = persona["key"]
    weights = dict(_PERSONA_THEMES[key])
    incident = INCIDENT[0] <= newness < INCIDENT[1]
    if "cancellation" in weights:
        weights["cancellation"] *= 0.5 + 1.5 * newness
    if "billing" in weights and day_of_month <= 3:
        weights["billing"] *= 2.5
    if "technical" in weights and incident:
        weights["technical"] *= 4.0
    theme = _pick(rng, weights)
    if key == "tutor":
        language = "es" if rng.random() < 0.6 else "fr"
    elif key in ("support", "sales") and theme in ("technical", "billing", "cancellation"):
        r = rng.random()
        language = "es" if r < 0.06 else "fr" if r < 0.10 else "en"
    else:
        language = "en"
    sour = 0.08
    if theme in ("technical", "cancellation", "billing"):
        sour += 0.1
    if struggling:
        sour += 0.2
    if incident and theme == "technical":
        sour += 0.35
    moods = {
        "sour": sour,
        "delighted": 0.08 if theme == "cancellation" else 0.22,
        "relieved": 0.14 if theme in ("technical", "billing") else 0.03,
    }
    moods["neutral"] = max(0.0, 1.0 - sum(moods.values()))
    mood = _pick(rng, moods)
    if language != "en" and mood != "sour":
        mood = "neutral"

    text = THEMES[theme][language]
    intents = text["questions"]
    asked = [rng.choice(wordings) for wordings in rng.sample(intents, k=min(3, len(intents)))]
    if len(asked) == 3 and rng.random() < 0.3:
        asked = asked[:2]
    fillers = _FILLERS[language]
    statements = text["statements"]
    if language == "en":
        opening = statements + asked * 2 + fillers[:3]
        middle = statements + asked * 2 + fillers + [_REPEAT[language]]
        end = asked + fillers + _MOOD_LINES["polite_end"]
        if mood == "sour":
            middle = middle + _MOOD_LINES["sour_middle"] * 2
            end = asked + fillers[:3] + _MOOD_LINES["sour_middle"] + _MOOD_LINES["sour_end"] * 2
        elif mood == "delighted":
            middle = middle + _MOOD_LINES["happy"]
            end = asked + fillers[:3] + _MOOD_LINES["happy"] * 2
        elif mood == "relieved":
            opening = statements + asked + _MOOD_LINES["upset_start"] * 3
            end = asked + fillers[:3] + _MOOD_LINES["happy"] * 2
        answers = text["answers"] * 2 + (_APOLOGIES * 2 if mood in ("sour", "relieved") else [])
        assistant = persona["assistant"] + answers
        greetings, closers = persona["greetings"], persona["closers"]
    else:
        opening = statements + asked * 2 + fillers[:2]
        middle = statements + asked + fillers + [_REPEAT[language]]
        end = asked + fillers
        if mood == "sour":
            middle = middle + _SOUR_FOREIGN[language]
            end = end + _SOUR_FOREIGN[language] * 3
        if key == "tutor":
            assistant = text["answers"]
            greetings = _same_length(_TUTOR_GREETINGS[language], len(persona["greetings"]))
            closers = _same_length(_TUTOR_CLOSERS[language], len(persona["closers"]))
        else:
            assistant = _SUPPORT_ASSISTANT[language]
            greetings = _same_length(_GREETINGS[language], len(persona["greetings"]))
            closers = _same_length(_CLOSERS[language], len(persona["closers"]))
    last = _LAST_WORDS.get((language, mood)) or _LAST_WORDS[(language, "neutral")]
    if language != "en" and mood == "sour":
        last = _same_length(_SOUR_FOREIGN[language], 6)
    return Voice(
        theme=theme,
        mood=mood,
        language=language,
        greetings=greetings,
        closers=closers,
        last_words=last,
        user_pools=(opening, middle, end),
        assistant_pool=assistant,
    )
