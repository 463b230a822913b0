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
/// Only the public members XmlSerializer uses are kept: DynamicallyAccessedMemberTypes.All also kept the
/// interfaces of Collection&lt;T&gt;, which made their methods reflectable on every generic instantiation in the
/// program and compiled every List and Dictionary variant into it (~0.9 MB of each binary, bench/RESULTS.md).
/// </summary>
internal static class MinioTrimming
{
    private const DynamicallyAccessedMemberTypes XmlSerializerNeeds = DynamicallyAccessedMemberTypes.PublicConstructors
        | DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicFields | DynamicallyAccessedMemberTypes.PublicMethods;

    [DynamicDependency(XmlSerializerNeeds, typeof(InitiateMultipartUploadResult))]
    [DynamicDependency(XmlSerializerNeeds, typeof(CompleteMultipartUploadResult))]
    [DynamicDependency(XmlSerializerNeeds, typeof(DeleteObjectsResult))]
    [DynamicDependency(XmlSerializerNeeds, typeof(DeletedObject))]
    [DynamicDependency(XmlSerializerNeeds, typeof(DeleteError))]
    [DynamicDependency(XmlSerializerNeeds, typeof(ErrorResponse))]
    [DynamicDependency(XmlSerializerNeeds, typeof(ListAllMyBucketsResult))]
    [DynamicDependency(XmlSerializerNeeds, typeof(Bucket))]
    [DynamicDependency(XmlSerializerNeeds, typeof(Collection<DeletedObject>))]
    [DynamicDependency(XmlSerializerNeeds, typeof(Collection<DeleteError>))]
    [DynamicDependency(XmlSerializerNeeds, typeof(Collection<Bucket>))]
    public static void KeepXmlModelTypes()
    {
    }
}
