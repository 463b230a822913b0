using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;
using Minio.DataModel;
using Minio.DataModel.Result;
using Minio.Exceptions;

namespace InfraTools.S3;

/// <summary>
/// Why Minio breaks in a Native AOT binary, and the fix.
/// Minio reads several S3 responses with XmlSerializer, which builds objects by reflection: it needs the
/// public constructor and the property setters of each model type. The trimmer sees no static use of those
/// members and removes them, so in the AOT binary the deserialised objects come back empty: the multipart
/// upload id is null ("UploadId not assigned for PutObjectPart operation"), a batch delete's result is
/// lost, and an S3 error body cannot be read, which turns BucketNotFound or a signature error into a
/// NullReferenceException. Keeping exactly these types (and the Collection&lt;T&gt; their lists are
/// deserialised into) restores the JIT behaviour; the AOT tests in tests/InfraTools.Core.Tests prove each
/// operation against a real S3 server.
/// </summary>
internal static class MinioTrimming
{
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(InitiateMultipartUploadResult))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(CompleteMultipartUploadResult))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(DeleteObjectsResult))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(DeletedObject))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(DeleteError))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(ErrorResponse))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(ListAllMyBucketsResult))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Bucket))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Collection<DeletedObject>))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Collection<DeleteError>))]
    [DynamicDependency(DynamicallyAccessedMemberTypes.All, typeof(Collection<Bucket>))]
    public static void KeepXmlModelTypes()
    {
    }
}
