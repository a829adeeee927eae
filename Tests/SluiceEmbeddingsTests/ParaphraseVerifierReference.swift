// Written by scripts/train-cache-verifier.py; do not edit.
// Pairs the training neither fitted nor chose a threshold on, and PyTorch's probability for each.

enum ParaphraseVerifierReference {
    static let pairs: [(String, String, Double)] = [
        ("Ejaculate in mouth?", "My best friend rejected me saying she wanted to finish college first. Few months later, she started dating someone in my batch. Why do I feel bad?", 0.00507),
        ("What is the meaning of Urdu word 'Khidmat'?", "What is the meaning of Urdu word 'Ittefaq'?", 0.00739),
        ("If you could be reincarnated as a different race/ethnicity, which race would you choose and why?", "If you could irreversibly change your race, what race would it be and why?", 0.62063),
        ("How does a long distance relationship work?", "Do long distance relationships ever work out?", 0.79914),
        ("What should be learnt to sustain in IT?", "What things should be done or learnt in the first year of engineering except academics, something that is not related to placements?", 0.03360),
        ("How do I find a person that needs a job and a roof over there head, and a chance to turn their life around?", "How are supernova and black holes related?", 0.00395),
        ("How do I make a unmanned aerial vehicle?", "How we can make drones?", 0.85230),
        ("How can I retrieve my Google account?", "What are my options for recovering my Google account?", 0.73960),
        ("Can a plane land from cruise altitude with both engines out?", "Can an airliner glide to the ground if both engines stop during high cruise altitude and cruise speed?", 0.31325),
        ("How can I view deleted Instagram messages or text?", "How can I get back my instagram deleted dms?", 0.05506),
        ("You can find more information about datasets by clicking on the \"Datasets\" link provided in the document.", "By clicking on the \"Datasets\" link in the document, one can gain access to more information about datasets.", 0.99971),
        ("The conversion step from CSV to Arrow format is required to load the dataset and it takes time and disk space if the dataset is big.", "The transformation from CSV to Arrow format is essential for loading the dataset and it can be time-consuming and space-consuming if the dataset is large.", 0.99971),
    ]
}
