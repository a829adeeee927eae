import Foundation

/// Small charts drawn as inline SVG on the server: the dashboard needs no script and no CDN.
enum SVGChart {
    /// Bars, one per value, scaled to the largest; `label` is the chart's accessible title.
    static func bars(_ values: [Double], label: String, width: Int = 1160, height: Int = 120, colour: String = "#3b82f6") -> String {
        let top = max(values.max() ?? 0, 1)
        let step = Double(width) / Double(max(values.count, 1))
        var out = svgOpen(label: label, width: width, height: height)
        for (i, v) in values.enumerated() {
            let h = v / top * Double(height - 14)
            let x = Double(i) * step + 1
            out += ##"<rect x="\##(fmt(x))" y="\##(fmt(Double(height) - h))" width="\##(fmt(max(step - 2, 1)))" height="\##(fmt(h))" fill="\##(colour)"><title>\##(fmt(v))</title></rect>"##
        }
        out += ##"<text x="2" y="10" font-size="10" fill="#64748b">max \##(fmt(top))</text></svg>"##
        return out
    }

    /// A line through the values that exist (gaps where a bucket had none).
    static func line(_ values: [Double?], label: String, width: Int = 1160, height: Int = 120, colour: String = "#f59e0b", unit: String = "ms") -> String {
        let present = values.compactMap { $0 }
        let top = max(present.max() ?? 0, 1)
        let step = Double(width) / Double(max(values.count - 1, 1))
        var out = svgOpen(label: label, width: width, height: height)
        var segment: [String] = []
        func flush() {
            if segment.count > 1 { out += ##"<polyline fill="none" stroke="\##(colour)" stroke-width="2" points="\##(segment.joined(separator: " "))"/>"## }
            if segment.count == 1 {
                let xy = segment[0].split(separator: ",")
                out += ##"<circle cx="\##(xy[0])" cy="\##(xy[1])" r="2" fill="\##(colour)"/>"##
            }
            segment = []
        }
        for (i, v) in values.enumerated() {
            guard let v else { flush(); continue }
            segment.append("\(fmt(Double(i) * step)),\(fmt(Double(height) - v / top * Double(height - 14)))")
        }
        flush()
        out += ##"<text x="2" y="10" font-size="10" fill="#64748b">max \##(fmt(top)) \##(unit)</text></svg>"##
        return out
    }

    static func svgOpen(label: String, width: Int, height: Int) -> String {
        ##"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="\##(escape(label))" viewBox="0 0 \##(width) \##(height)" style="width:100%;height:auto"><title>\##(escape(label))</title>"##
    }

    static func fmt(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e12 ? String(Int(v)) : String(format: "%.1f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
