import Testing
@testable import SluiceCache

@Suite struct QuestionMatchTests {
    @Test func rephrasingsMatch() {
        #expect(QuestionMatch.matches("How do I start an organization in college?", "How do you start an organization in college?"))
        #expect(QuestionMatch.matches("Can someone read my palm?", "Could someone read my palm?"))
        #expect(QuestionMatch.matches("What should I do after completing BCA ?", "What should I do after completing BCA?"))
        #expect(QuestionMatch.matches("Which novel should I read?", "What novel should I read?"))
        #expect(QuestionMatch.matches("I can't sleep at night, what to do?", "I cannot sleep at night, what to do?"))
    }

    @Test func swappedRolesDoNotMatch() {
        // PAWS-style: the same words, the meaning changed by their order.
        #expect(!QuestionMatch.matches("Is Anna Tom's friend?", "Is Tom Anna's friend?"))
        #expect(
            !QuestionMatch.matches(
                "The team moved from Boston to Chicago in 1950 .", "The team moved from Chicago to Boston in 1950 ."))
    }

    @Test func numbersNamesNegationAndQuestionWordsMustAgree() {
        #expect(!QuestionMatch.matches("What is 15% of 200?", "What is 15% of 300?"))
        #expect(!QuestionMatch.matches("Rehab center near Mercer County IL?", "Rehab center near Union County IL?"))
        #expect(!QuestionMatch.matches("Why is Python slow?", "Why is Python not slow?"))
        #expect(!QuestionMatch.matches("Why doesn't my code compile?", "Why does my code compile?"))
        #expect(!QuestionMatch.matches("How was Arjuna Ratha built?", "Why was Arjuna Ratha built?"))
        #expect(!QuestionMatch.matches("Where was Cinderella's father?", "Who is Cinderella's father?"))
    }

    @Test func outOfOrderCountsWordsAgainstTheLongestAgreeingRun() {
        #expect(QuestionMatch.outOfOrder(["a", "b", "c", "d"], ["a", "b", "c", "d"]) == 0)
        #expect(QuestionMatch.outOfOrder(["a", "b", "c", "d"], ["c", "b", "a", "d"]) == 2)
        // A repeated word's k-th use pairs with its k-th use on the other side.
        #expect(QuestionMatch.outOfOrder(["a", "a", "b"], ["b", "a", "a"]) == 1)
        #expect(QuestionMatch.outOfOrder(["group", "fighter", "group"], ["group", "fighter", "group"]) == 0)
    }
}
