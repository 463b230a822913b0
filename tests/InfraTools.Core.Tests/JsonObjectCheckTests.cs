using System.Text;
using InfraTools.Files;

namespace InfraTools.Tests;

public class JsonObjectCheckTests
{
    [Theory]
    [InlineData("{}")]
    [InlineData(" {\"letsencrypt\": {\"Account\": null, \"Certificates\": []}}\n")]
    public void One_object_has_no_problem(string content) => Assert.Null(JsonObjectCheck.Problem(Encoding.UTF8.GetBytes(content)));

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("  \n", "is empty")]
    [InlineData("[1, 2]", "is a JSON array, not an object")]
    [InlineData("\"text\"", "is a JSON string, not an object")]
    [InlineData("null", "is a JSON null, not an object")]
    [InlineData("{\"Account\": ", "is not valid JSON (")]
    [InlineData("{} {}", "is not valid JSON (")]
    [InlineData("{\"a\": 1,}", "is not valid JSON (")]
    public void Anything_else_says_what_is_wrong(string content, string problem) =>
        Assert.StartsWith(problem, JsonObjectCheck.Problem(Encoding.UTF8.GetBytes(content)));

    [Theory]
    [InlineData("""{"status":"success","data":{"name":"20261124T101010Z-1a2b"}}""", "20261124T101010Z-1a2b")]
    [InlineData("""{"other":{"data":{"name":"deep"}},"data":{"x":[{"name":"no"}],"name":"yes"}}""", "yes")]
    [InlineData("""{"name":"top","data":{}}""", null)]
    [InlineData("""{"data":{"name":7}}""", null)]
    [InlineData("""{"data":{"name":"cut""", null)]
    [InlineData("not json", null)]
    public void Nested_string_is_found_only_at_its_path(string content, string? expected) =>
        Assert.Equal(expected, JsonObjectCheck.NestedString(Encoding.UTF8.GetBytes(content), "data", "name"));
}
