import SluiceRuntime
import Testing

@Suite struct HexTests {
    @Test func bytesAreWrittenAsLowerCaseHexInOrder() {
        #expect(Hex.lowercase([]) == "")
        #expect(Hex.lowercase([0x00, 0x09, 0x0a, 0x0f, 0x10, 0x9f, 0xa0, 0xff]) == "00090a0f109fa0ff")
        #expect(Hex.lowercase(Array(0...255)).count == 512)
        #expect(Hex.lowercase(Array(0...255)) == (0...255).map { b in String(b, radix: 16).count == 1 ? "0" + String(b, radix: 16) : String(b, radix: 16) }.joined())
    }
}
